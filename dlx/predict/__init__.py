"""`dlx predict`: a trained run's answers on new inputs (inputs.py reads them, core.py predicts, output.py writes)."""
