"""Carbon: grid zones and intensity sources."""
