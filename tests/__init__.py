"""Tests of the platform: unit/, integration/, worker/, browser/; shared builders in factories/."""
