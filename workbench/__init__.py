"""The workbench engine: projects, data, methods, jobs and exports. Never imports the UI."""

__version__ = "0.1.0"
