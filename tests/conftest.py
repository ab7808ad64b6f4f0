pytest_plugins = ["appliance.testing"]
