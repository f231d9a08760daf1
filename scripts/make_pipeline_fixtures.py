# Writes Tests/SpeedPipelineTests/Fixtures/deepspeed_pipe.json from DeepSpeed itself (pip install deepspeed; tested
# with 0.19.8): TrainSchedule / InferenceSchedule instruction lists and buffer counts, partition_uniform,
# partition_balanced and PipeDataParallelTopology / PipeModelDataParallelTopology layouts.
# Usage: python scripts/make_pipeline_fixtures.py  (from the repository root)
import json
import random

import deepspeed
from deepspeed.runtime.pipe.schedule import InferenceSchedule, TrainSchedule
from deepspeed.runtime.pipe.topology import PipeDataParallelTopology, PipeModelDataParallelTopology
from deepspeed.runtime.utils import partition_balanced, partition_uniform


def steps(schedule):
    return [[repr(c) for c in step] for step in schedule]


pairs = [(1, 1), (1, 3), (2, 1), (2, 2), (2, 4), (3, 2), (3, 5), (4, 4), (4, 8), (5, 3)]
schedules = []
for stages, micro in pairs:
    for stage in range(stages):
        t = TrainSchedule(micro_batches=micro, stages=stages, stage_id=stage)
        i = InferenceSchedule(micro_batches=micro, stages=stages, stage_id=stage)
        schedules.append({"stages": stages, "microBatches": micro, "stageID": stage,
                          "train": steps(t), "trainBuffers": t.num_pipe_buffers(),
                          "inference": steps(i), "inferenceBuffers": i.num_pipe_buffers()})

rng = random.Random(17)
weight_lists = [[1, 1, 1, 1, 4], [0, 0, 1, 1, 1, 1, 0, 0], [5, 1, 1, 1, 1, 5], [3, 3, 3], [7]]
# A GPT as GPTPipe lays it out: wte, wpe, L blocks, ln_f, head (V=64, T=16, C=32, L=4 and gpt-mini).
for v, t, c, l in [(64, 16, 32, 4), (8192, 128, 256, 4)]:
    weight_lists.append([v * c, t * c] + [12 * c * c + 13 * c] * l + [2 * c, v * c])
weight_lists += [[rng.randint(0, 50) for _ in range(rng.randint(2, 12))] for _ in range(12)]
balanced = []
for w in weight_lists:
    for parts in [1, 2, 3, 4]:
        balanced.append({"weights": w, "parts": parts, "bounds": [int(x) for x in partition_balanced(w, parts)]})
uniform = [{"items": n, "parts": p, "bounds": [int(x) for x in partition_uniform(n, p)]}
           for n in [0, 1, 3, 7, 8, 10, 13] for p in [1, 2, 3, 4, 5]]

topologies = []
for pp, dp in [(2, 1), (2, 2), (2, 3), (4, 2)]:
    topo = PipeDataParallelTopology(num_pp=pp, num_dp=dp)
    topologies.append({"axes": topo.get_axis_names(), "dims": [pp, dp],
                       "coords": [list(topo.get_coord(r)) for r in range(topo.world_size())],
                       "pipeLists": topo.get_axis_comm_lists("pipe"), "dataLists": topo.get_axis_comm_lists("data")})
topo = PipeModelDataParallelTopology(num_pp=2, num_mp=2, num_dp=2)
topologies.append({"axes": topo.get_axis_names(), "dims": [2, 2, 2],
                   "coords": [list(topo.get_coord(r)) for r in range(topo.world_size())],
                   "pipeLists": topo.get_axis_comm_lists("pipe"), "dataLists": topo.get_axis_comm_lists("data"),
                   "modelLists": topo.get_axis_comm_lists("model"),
                   "rankRepr": [topo.get_rank_repr(r) for r in range(topo.world_size())]})

out = {"deepspeed": deepspeed.__version__, "schedules": schedules, "balanced": balanced, "uniform": uniform,
       "topologies": topologies}
with open("Tests/SpeedPipelineTests/Fixtures/deepspeed_pipe.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print("wrote", len(schedules), "schedules,", len(balanced), "balanced partitions")
