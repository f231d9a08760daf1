// Intentionally empty: CSpeedShims only declares symbols that live in linked libraries.
