"""The ground floor: what every room shares and nothing above it may be imported by.

Settings, database URLs and connections, migrations, the commit horizon, PSP signatures,
the audit writer, failure reporting, the on-call model, the recording-rule names, build
information and the JSON log format. ``core`` imports nothing outside itself.
"""
