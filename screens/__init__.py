"""The Textual UI of the workbench.

It reads the engine's light modules (projects, data reports, events, the method
registry) and never imports the machine-learning stack: anything that loads a model
runs in a child process.
"""
