"""The live path: a faust worker that turns audio chunks into transcript segments."""
