from dlx.cli import app

app(prog_name="dlx")
