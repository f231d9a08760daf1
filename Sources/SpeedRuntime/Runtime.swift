// SpeedRuntime: DeepSpeed's runtime (config, engine, precision, checkpoints, monitors, data).
