# The host's own test kit, the same one vendors opt into.
pytest_plugins = ["appliance.testing", "appliance.testing_rigs"]
