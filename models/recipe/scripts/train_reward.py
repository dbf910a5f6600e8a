"""Reward stage: trains the discriminator the runtime ranks candidates with (server/protocol/candidates.ts) on the
shipped model's own candidates (scripts/data_reward.py), so that likelihood + syntax + reward picks the right row more
often than likelihood + syntax alone. Writes runs/<run-name>/{disc.pt, log.jsonl}; scripts/export_disc.py --disc
ships it beside the denoiser.

Run from models/recipe/ (both cores; stops itself after --max-minutes and keeps the best validation checkpoint):
    nohup python -m scripts.train_reward --teacher weights/gpu-window-11-mdm.pt --data data/reward/examples.jsonl.gz \
        --run-name reward-12 --max-minutes 24 --graded-weight 0.5 --eval-every 40 > runs/reward-12.out 2>&1 &
CPU smoke: tests/test_reward.py trains a tiny random teacher's discriminator for 30 steps and exports it (run_cpu.sh runs it).

The network is unmask/discriminator.py's: a copy of the denoiser's backbone (token embedding and lower blocks frozen,
the last --trainable-blocks blocks, final norm, time MLP and a spectral-norm head trained), full attention, one logit
per canvas position. A candidate's reward is what the runtime computes: the mean of those logits over the hole's
span positions of its finished canvas at t = t_clean (0: nothing masked).

Per task (shapes: N items = the target plus the model's distinct rows, T canvas tokens, P span positions):
    logits [N, P] -> reward r [N]
    loss = BCE(r, label)                    every item: the real code and right rows 1, wrong rows 0 ("real vs model")
         + CE(softmax(score + r), right)    the model rows of a task with right and wrong rows: `score` is the CLI's
                                            own ranking score (mean log-prob per token - 2 x extra syntax errors), so
                                            the reward learns what likelihood and syntax miss, on the scale it is
                                            added to (rerank.ts: score + 1 x reward)
         + g x CE(softmax(score + r),       (--graded-weight g) the other tasks, most of them: rows closer to the
                  softmax(sim / tau))       target's first line (edit similarity) should rank higher
Tasks are split by --valid-share (by id hash) into train and a validation share that picks the checkpoint: of its
tasks with right and wrong rows, the share whose top row (by score + r) has the right first line, against score alone.
Those tasks are ~10% of all; --mixed-share of the training draws come from them so that the ranking loss sees enough.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

from unmask import checkpoint
from unmask.discriminator import Discriminator, default_trainable_blocks
from unmask.paths import command_line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--teacher", required=True, help="the shipped denoiser's checkpoint (the backbone the discriminator copies)")
    a("--data", default="data/reward/examples.jsonl.gz", help="data_reward.py's labelled canvases")
    a("--run-name", default="reward", help="folder under --runs-dir")
    a("--runs-dir", default="runs", help="where runs go")
    a("--trainable-blocks", type=int, default=0, help="blocks trained from the top (0: half the depth, at most 4)")
    a("--lr", type=float, default=1e-4, help="AdamW learning rate of the trainable blocks and the head")
    a("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    a("--warmup", type=int, default=50, help="optimizer steps of linear learning-rate warmup")
    a("--tasks-per-step", type=int, default=8, help="tasks whose gradients one optimizer step sums")
    a("--mixed-share", type=float, default=0.5,
      help="share of training draws from the tasks with right and wrong rows (0: every task alike)")
    a("--rank-weight", type=float, default=1.0, help="weight of the listwise ranking loss")
    a("--bce-weight", type=float, default=0.5, help="weight of the real-vs-model BCE loss")
    a("--graded-weight", type=float, default=0.0,
      help="weight of the graded ranking loss on tasks whose rows are all right or all wrong (0: off)")
    a("--graded-temperature", type=float, default=0.1,
      help="the graded loss's target is softmax(first-line edit similarity / this) over the task's ranked rows")
    a("--valid-share", type=float, default=0.15, help="share of tasks held out to pick the checkpoint")
    a("--t-clean", type=float, default=0.0, help="the noise level finished candidates are scored at")
    a("--max-minutes", type=float, default=60.0, help="stop after this many minutes of training")
    a("--max-steps", type=int, default=0, help="stop after this many optimizer steps (0: no limit)")
    a("--eval-every", type=int, default=100, help="optimizer steps between validations")
    a("--valid-graded", type=int, default=300, help="validation tasks the graded similarity is reported on")
    a("--grad-clip", type=float, default=1.0, help="gradient norm clip")
    a("--threads", type=int, default=0, help="torch threads (0: every core)")
    a("--seed", type=int, default=0, help="seed of the task order")
    return p.parse_args(argv)


def is_valid(task_id: str, share: float) -> bool:
    """A stable split by task id: the same tasks validate in every run."""
    return (zlib.crc32(str(task_id).encode()) % 10_000) < share * 10_000


def read_tasks(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task_tensors(task: dict) -> dict:
    """ids [N, T] long, positions [P] long, labels [N] float, model [N] bool, score [N] float (nan: none)."""
    items = task["items"]
    return {"ids": torch.tensor([it["canvas"] for it in items], dtype=torch.long),
            "positions": torch.tensor(task["span"], dtype=torch.long),
            "labels": torch.tensor([float(it["label"]) for it in items]),
            "model": torch.tensor([it["source"] == "model" for it in items]),
            "score": torch.tensor([float("nan") if it.get("score") is None else float(it["score"]) for it in items]),
            "similarity": torch.tensor([float(it.get("similarity", it["label"])) for it in items])}


def rewards(disc: Discriminator, x: dict, t_clean: float) -> torch.Tensor:
    """[N] mean per-token logit over the span: the runtime's reward."""
    n = x["ids"].shape[0]
    positions = x["positions"].unsqueeze(0).expand(n, -1)  # [N, P]
    logits = disc(x["ids"], positions, torch.full((n,), t_clean))  # [N, P]
    return logits.mean(dim=1)


def task_loss(r: torch.Tensor, x: dict, args) -> tuple[torch.Tensor, dict]:
    bce = F.binary_cross_entropy_with_logits(r, x["labels"])
    loss = args.bce_weight * bce
    m = {"bce": bce.item()}
    rows = x["model"] & ~torch.isnan(x["score"])
    right = x["labels"][rows]
    if rows.sum() >= 2 and 0 < right.sum() < len(right):
        z = x["score"][rows] + r[rows]  # [M] the runtime's ranking score
        rank = -(torch.log_softmax(z, 0) * (right / right.sum())).sum()
        loss = loss + args.rank_weight * rank
        m["rank"] = rank.item()
    elif args.graded_weight > 0 and rows.sum() >= 2:
        sim = x["similarity"][rows]
        if sim.max() - sim.min() > 1e-3:
            target = torch.softmax(sim / args.graded_temperature, 0)  # [M]
            graded = -(torch.log_softmax(x["score"][rows] + r[rows], 0) * target).sum()
            loss = loss + args.graded_weight * graded
            m["graded"] = graded.item()
    return loss, m


def mixed(task: dict) -> bool:
    """Whether the task's ranked model rows hold right and wrong ones: the only tasks a ranking can change."""
    labels = [it["label"] for it in task["items"] if it["source"] == "model" and it.get("score") is not None]
    return 0 < sum(labels) < len(labels)


def graded(task: dict) -> bool:
    """Whether the task's ranked model rows are all right or all wrong but differ in how close they come."""
    sims = [it.get("similarity", 0.0) for it in task["items"] if it["source"] == "model" and it.get("score") is not None]
    return not mixed(task) and len(sims) >= 2 and max(sims) - min(sims) > 1e-3


@torch.no_grad()
def validate(disc: Discriminator, tasks: list[dict], t_clean: float, graded_tasks: list[dict] = ()) -> dict:
    """On the validation tasks with right and wrong rows (the others rank alike whatever the reward): the share whose
    top row by score alone, by score + reward and by reward alone has the right first line; the reward's accuracy
    as a classifier (> 0: right or real) over all their items. On `graded_tasks`: the mean first-line edit
    similarity of the top row by score alone and by score + reward."""
    disc.eval()
    sim_base = sim_both = 0.0
    for task in graded_tasks:
        x = task_tensors(task)
        rows = x["model"] & ~torch.isnan(x["score"])
        r = rewards(disc, x, t_clean)[rows]
        score, sim = x["score"][rows], x["similarity"][rows]
        sim_base += float(sim[int(torch.argmax(score))])
        sim_both += float(sim[int(torch.argmax(score + r))])
    graded_n = {"graded_tasks": len(graded_tasks), "sim_score": sim_base / max(len(graded_tasks), 1),
                "sim_score_reward": sim_both / max(len(graded_tasks), 1)}
    base = both = alone = n = 0
    agree = total = 0
    for task in tasks:
        x = task_tensors(task)
        rows = x["model"] & ~torch.isnan(x["score"])
        r = rewards(disc, x, t_clean)
        agree += int(((r > 0).float() == x["labels"]).sum())
        total += len(r)
        score, right, rr = x["score"][rows], x["labels"][rows], r[rows]
        base += float(right[int(torch.argmax(score))])  # argmax: the first of ties, as the CLI's stable sort
        both += float(right[int(torch.argmax(score + rr))])
        alone += float(right[int(torch.argmax(rr))])
        n += 1
    disc.train()
    n = max(n, 1)
    return {"tasks": n, "top1_score": base / n, "top1_score_reward": both / n, "top1_reward": alone / n,
            "accuracy": agree / max(total, 1), **graded_n}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    teacher, tckpt = checkpoint.load_model(args.teacher)
    k = args.trainable_blocks or default_trainable_blocks(teacher.config["n_layer"])
    disc = Discriminator.from_teacher(teacher, k).train()
    del teacher
    params = [p for p in disc.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    tasks = read_tasks(args.data)
    train = [t for t in tasks if not is_valid(t["id"], args.valid_share)]
    valid = [t for t in tasks if is_valid(t["id"], args.valid_share) and mixed(t)]
    valid_graded = [t for t in tasks if is_valid(t["id"], args.valid_share) and graded(t)][:args.valid_graded]
    out = Path(args.runs_dir) / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    def emit(line: dict) -> None:
        with open(out / "log.jsonl", "a") as log:
            log.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)

    emit({"event": "start", "teacher": args.teacher, "train_tasks": len(train), "valid_mixed_tasks": len(valid),
          "valid_graded_tasks": len(valid_graded),
          "trainable_blocks": k, "trainable_params": sum(p.numel() for p in params), "threads": torch.get_num_threads(),
          "torch": str(torch.__version__)})
    best = validate(disc, valid, args.t_clean, valid_graded)
    emit({"event": "valid", "step": 0, **best})
    best_key = selection_key(best)
    rng = random.Random(args.seed)
    t0, step, seen, tokens = time.time(), 0, 0, 0
    window: dict[str, list] = {}

    def save(metrics: dict) -> None:
        checkpoint.save(out / "disc.pt", disc.state_dict(), stage="reward", config=disc.disc_config(),
                        special=tckpt["special"], tokenizer=tckpt.get("tokenizer", ""),
                        tokenizer_sha256=tckpt.get("tokenizer_sha256"), lineage=checkpoint.lineage_after(tckpt),
                        args=args, step=step, train_tokens=tokens, train_seconds=time.time() - t0, metrics=metrics,
                        device="cpu", world=1, teacher={"path": args.teacher, "step": tckpt.get("step"),
                                                        "train_tokens": tckpt.get("train_tokens")},
                        disc_meaning={"real": "the code that was there, and model rows with the right first line",
                                      "fake": "model rows with a wrong first line", "t_clean": args.t_clean})

    save(best)
    stream = task_stream(train, args.mixed_share, rng)
    while True:
        lr = args.lr * min(1.0, (step + 1) / max(args.warmup, 1))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        for _ in range(args.tasks_per_step):
            x = task_tensors(next(stream))
            loss, m = task_loss(rewards(disc, x, args.t_clean), x, args)
            (loss / args.tasks_per_step).backward()
            tokens += x["ids"].numel()
            for key, v in m.items():
                window.setdefault(key, []).append(v)
        torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        step += 1
        seen += args.tasks_per_step
        minutes = (time.time() - t0) / 60
        done = minutes >= args.max_minutes or (args.max_steps and step >= args.max_steps)
        if step % args.eval_every == 0 or done:
            v = validate(disc, valid, args.t_clean, valid_graded)
            emit({"event": "valid", "step": step, "tasks_seen": seen, "tokens": tokens,
                  "minutes": round(minutes, 2), "tokens_per_s": round(tokens / max(time.time() - t0, 1e-9)),
                  **{f"train_{k}": sum(vs) / len(vs) for k, vs in window.items()}, **v})
            window.clear()
            if selection_key(v) > best_key:
                best_key, best = selection_key(v), v
                save({**v, "step": step})
        if done:
            emit({"event": "end", "step": step, "best": best,
                  "command": command_line("scripts.train_reward", sys.argv[1:] if argv is None else argv)})
            return best


def selection_key(v: dict) -> tuple:
    """The checkpoint kept: the most right first lines put first; on a tie, the closest first lines."""
    return (v["top1_score_reward"], v["sim_score_reward"])


def task_stream(train: list[dict], mixed_share: float, rng: random.Random):
    """Training tasks forever, each pool reshuffled whenever it runs out; a draw comes from the tasks with right and
    wrong rows with probability `mixed_share` (they are ~10% of tasks and the only ones the ranking loss sees)."""
    pools = [[t for t in train if mixed(t)], [t for t in train if not mixed(t)]]
    if mixed_share <= 0 or not pools[0] or not pools[1]:
        pools, mixed_share = [list(train), []], 1.0
    cursors = [len(p) for p in pools]
    while True:
        k = 0 if rng.random() < mixed_share else 1
        if cursors[k] >= len(pools[k]):
            rng.shuffle(pools[k])
            cursors[k] = 0
        cursors[k] += 1
        yield pools[k][cursors[k] - 1]


if __name__ == "__main__":
    main()
