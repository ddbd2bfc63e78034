from dlx.cli import run

run()
