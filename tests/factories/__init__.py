"""Builders of test data that go through the services (one module per area), imported as
``tests.factories.<area>``."""
