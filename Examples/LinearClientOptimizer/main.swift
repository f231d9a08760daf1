// The second seed program in Swift: a Linear(10, 10) model with a client Adam optimizer passed to
// initialize (it wins over the config's block), micro-batch 4 and gradient accumulation 4.
import SwiftSpeed

let configPath = CommandLine.arguments.dropFirst().first ?? "Examples/LinearClientOptimizer/ds_config.json"

var rng = RandomStream(seed: 0)
let model = Linear(10, 10, rng: &rng)
let optimizer = Adam(lr: 0.001)

let config = try DeepSpeedConfig.load(path: configPath, worldSize: 1)
let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: config, optimizer: optimizer)
print("micro-batch \(engine.trainMicroBatchSize), gradient accumulation \(engine.gradientAccumulationSteps)")

// A fixed linear map to learn: y = x · Aᵀ.
let target = Tensor.randn([10, 10], std: 0.3, rng: &rng)
for step in 0..<2000 {
    let inputs = Tensor.randn([engine.trainMicroBatchSize, 10], rng: &rng)
    let labels = noGrad { Tensor.matmul(inputs, target, transposeB: true) }
    let outputs = engine(inputs)
    let loss = outputs.mseLoss(labels)
    try engine.backward(loss)
    try engine.step()
    if step % 200 == 0 || step == 1999 { print("micro-step \(step), optimizer step \(engine.globalSteps), loss \(loss.item())") }
}
