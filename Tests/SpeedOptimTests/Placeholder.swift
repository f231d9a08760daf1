// Placeholder until SpeedOptim's tests land.
