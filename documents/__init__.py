"""What becomes a file: the PDF/A-3 forms, their evidence attachments, PDF verification."""
