// Placeholder until SpeedRuntime's tests land.
