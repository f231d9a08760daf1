#!/usr/bin/env bash
# Checks that SwiftSpeed works as a versioned dependency of another package, as a user's Package.swift names it:
# SwiftPM refuses a dependency whose manifest has unsafeFlags, and a dependency builds with none of this repo's
# checkout around it. Steps, all in a temporary folder (removed at the end; KEEP=1 keeps it):
#   1. a bare clone of this repo with the commit to check (default HEAD: the committed tree, not the work tree)
#      tagged 9.9.9;
#   2. a scratch package that depends on it with `.package(url: "file://…/SwiftSpeed", exact: "9.9.9")` and
#      trains a small SimpleModel through the public API (`import SwiftSpeed`, `initialize`, forward / backward /
#      step), printing each loss and failing unless the loss went down;
#   3. `swift build` (debug) and a run of it.
# SwiftSpeed's own dependencies resolve as this machine resolves them for the repo itself (the same git and
# SwiftPM configuration: here git reads github.com from local copies, so no network is needed).
# Exits non-zero on any failure.
#
#   bash scripts/check-dependency.sh          # HEAD
#   bash scripts/check-dependency.sh 7abb71f  # another commit
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
rev=$(git rev-parse --verify "${1:-HEAD}^{commit}")
version=9.9.9
start=$SECONDS

say() { printf 'check-dependency: %s\n' "$*"; }

if [ -n "$(git status --porcelain --untracked-files=no)" ] && [ $# -eq 0 ]; then
    say "note: the work tree has uncommitted changes; this checks the committed HEAD ($(git rev-parse --short HEAD)) only"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/swiftspeed-dependency.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    trap 'say "kept $tmp"' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi

# 1. The dependency: a bare clone with the commit tagged as a release.
git clone -q --bare --no-hardlinks "$repo" "$tmp/SwiftSpeed"
git -C "$tmp/SwiftSpeed" tag "$version" "$rev"
say "SwiftSpeed $(git rev-parse --short "$rev") tagged $version at file://$tmp/SwiftSpeed"

# 2. The consumer.
mkdir -p "$tmp/Consumer/Sources/Consumer"
cat > "$tmp/Consumer/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v15)],
    dependencies: [.package(url: "file://$tmp/SwiftSpeed", exact: "$version")],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [.product(name: "SwiftSpeed", package: "SwiftSpeed")]),
    ]
)
EOF
cat > "$tmp/Consumer/Sources/Consumer/main.swift" <<'EOF'
// A user's first program: a small SimpleModel fitted to one fixed batch through the engine.
import Foundation
import SwiftSpeed

var rng = RandomStream(seed: 0)
let model = SimpleModel(inFeatures: 16, hidden: 32, rng: &rng)
let x = Tensor.randn([8, 16], rng: &rng), y = Tensor.randn([8, 16], rng: &rng)
let config = try DeepSpeedConfig.parse(#"{"train_batch_size": 8, "optimizer": {"type": "Adam", "params": {"lr": 0.01}}}"#)
let (engine, _, _, _) = try SwiftSpeed.initialize(model: model, config: config)

var losses: [Double] = []
for step in 0..<30 {
    let loss = engine(x).mseLoss(y)
    try engine.backward(loss)
    try engine.step()
    losses.append(Double(loss.item()))
    print("step \(step): loss \(losses.last!)")
}
let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
guard last.isFinite, last < 0.5 * first else {
    print("FAIL: the loss did not go down (mean of the first 5 steps \(first), of the last 5 \(last))")
    exit(1)
}
print("OK: loss \(first) -> \(last) (mean of the first and last 5 steps)")
EOF

# 3. Resolve, build (debug) and run.
cd "$tmp/Consumer"
swift package resolve
swift build
./.build/debug/Consumer
say "passed in $((SECONDS - start)) s"
