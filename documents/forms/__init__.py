"""The three signed PDF/A-3b forms of a sealed donation: contents, evidence, rendering.

``templates.build_form`` turns the DonationRecord view into a `model.Form`; ``evidence``
gathers the associated files; ``render.render`` writes the PDF/A-3b; ``signing.pades`` signs it
(the wiring is ``services/forms.py``).
"""
