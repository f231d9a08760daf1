// Umbrella module: `import SwiftSpeed` brings in every layer. It re-exports and defines nothing.
@_exported import SpeedCore
@_exported import SpeedNN
@_exported import SpeedOptim
@_exported import SpeedRuntime
@_exported import SpeedComm
@_exported import SpeedCUDA
@_exported import SpeedCommMPI
@_exported import SpeedCommNCCL
@_exported import SpeedIO
@_exported import SpeedData
@_exported import SpeedTransformers
@_exported import SpeedTokenizers
@_exported import SpeedTrainer
@_exported import SpeedPipeline
