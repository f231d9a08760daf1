// The first seed program in Swift: SimpleModel (768 → 2048 → 768) trained with MSE through the engine
// on random data, with the seed's fp16 ZeRO-2 offload ds_config.json, unchanged.
import SwiftSpeed

let configPath = CommandLine.arguments.dropFirst().first ?? "Examples/SimpleModel/ds_config.json"

// 1. The model.
var rng = RandomStream(seed: 0)
let model = SimpleModel(rng: &rng)

// 2–3. Random data and its dataset (the seed uses 100 samples of 768 features).
let trainData = Tensor.randn([100, 768], rng: &rng)
let labels = Tensor.randn([100, 768], rng: &rng)
let dataset = TensorDataset(trainData, labels)

// 5. The engine (the config's train_batch_size 32 becomes the micro-batch with one process).
let config = try DeepSpeedConfig.load(path: configPath, worldSize: 1)
let (engine, _, loader, _) = try SwiftSpeed.initialize(model: model, config: config, trainingData: dataset)

// 6. The training loop: three epochs.
for epoch in 0..<3 {
    loader!.epoch = epoch
    for (batchIndex, batch) in loader!.enumerated() {
        let outputs = engine(batch[0])
        let loss = outputs.mseLoss(batch[1])
        try engine.backward(loss)
        try engine.step()
        if batchIndex % 10 == 0 {
            print("Epoch: \(epoch), Batch: \(batchIndex), Loss: \(loss.item())")
        }
    }
}
