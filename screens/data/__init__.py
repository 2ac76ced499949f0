"""A project's data: look at its records (`screen`), import a file (`importer`), hold out a split (`split`).

`source` reads dataset files a page at a time and runs the `workbench data` child;
`render` colours one record as the model sees it.
"""
