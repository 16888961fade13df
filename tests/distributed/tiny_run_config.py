"""The tiny run of the tests that launch a whole distributed job.

A byte tokenizer, the echo env and a 2-layer policy of hidden size 32: SFT,
then GRPO, small enough to finish in seconds on a loaded 2-core machine.
The cluster test (tests/distributed/cluster) and the Slurm test
(tests/distributed/slurm) run it with their own rank counts, step counts and
batch sizes, the arguments of tiny_run_config; anything else a test needs
it sets on the returned config.

The tests run as scripts from their own folders, so they put this folder on
sys.path before importing it.
"""

import json


def tiny_run_config(out_dir, *, learner_ranks, rollout_ranks, grpo_steps,
                    sft_steps, tasks_per_step, demo_episodes,
                    checkpoint_every, timeout_s=60):
    """The config as a dict. An SFT batch is as large as a GRPO step's
    tasks; one env server and one reward server serve all rollout ranks."""
    return {
        "run": {"name": "run", "out_dir": out_dir, "seed": 5, "threads": 1},
        "policy": {
            "init": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 512,
            },
            "tokenizer": "byte",
        },
        "envs": [{"name": "echo", "options": {"max_turns": 2}}],
        "rollout": {
            "group_size": 4,
            "tasks_per_step": tasks_per_step,
            "max_turns": 2,
            "max_tokens_per_turn": 6,
        },
        "trainer": {
            "stages": ["sft", "grpo"],
            "steps": grpo_steps,
            "kl_coef": 0.01,
            "sft": {
                "demo_episodes": demo_episodes,
                "steps": sft_steps,
                "batch_size": tasks_per_step,
                "eval_every": 0,
            },
            "lr": 1e-3,
            "micro_batch": 8,
            "checkpoint_every": checkpoint_every,
        },
        "distributed": {
            "learner_ranks": learner_ranks,
            "rollout_ranks": rollout_ranks,
            "env_server_ranks": 1,
            "reward_server_ranks": 1,
            "heartbeat_ms": 250,
            "heartbeat_misses": 4,
            "timeout_s": timeout_s,
        },
        "eval": {"validation_episodes": 2, "test_episodes": 2},
    }


def write_run_config(path, config):
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
