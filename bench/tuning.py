"""Instruction-tuning the bundled model on approved answers, end to end on CPU: dataset, LoRA run,
evaluation gate (docs/tuning.md).

    python bench/ingest.py --data-dir D                  # once: the E-Manual index (kb emanual)
    python bench/ingest.py --corpus mtrag --data-dir D   # once: the MTRAG index (kb mtrag)
    python bench/tuning.py --data-dir D [--fixed 30] [--train-seconds 1500] [--eval-limit 30]

The approved answers are the development sets' reference answers, given to ``tuning_dataset`` as
curated pairs (written to the data directory, never to the repository): E-Manual questions after
the first ``--fixed`` ones, and MTRAG tasks (answerable ones with their human answer, unanswerable
ones with the abstention; underspecified ones are left out, clarifying is right for them). The
builder retrieves each question's passages with the engine, re-verifies the answer against them,
and splits by conversation. The first ``--fixed`` E-Manual questions are the fixed evaluation set:
no run ever trains on them. The run then trains within the CPU budget and the gate answers the
held-out split and the fixed set with the base model and with the adapter.

Training speed is printed as tokens per second and as a ratio to a forward pass alone over the same
examples in the same process (a training step is a forward and a backward pass).

    python bench/tuning.py --data-dir D --serving RUN_ID

times generation with the run's adapter merged against the base model, on the same held-out
prompts in the same process (the ratio should be about 1: the adapter is merged into the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _setup import DATASET, MTRAG, django_embedded


def curated_pairs(fixed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    emanual = [json.loads(line) for line in open(DATASET / "questions.jsonl", encoding="utf-8") if line.strip()]
    pairs: list[dict[str, object]] = []
    for q in emanual[fixed:]:
        pairs.append(
            {
                "id": q["id"],
                "question": q["question"],
                "answer": q["answer"],
                "knowledge_base": "emanual",
                "gold_doc_ids": q["gold_doc_ids"],
            }
        )
    for t in (json.loads(line) for line in open(MTRAG / "questions.jsonl", encoding="utf-8") if line.strip()):
        if t["answerability"] == "underspecified":
            continue
        turns = [
            {"role": "user" if x["speaker"] == "user" else "assistant", "content": x["text"]} for x in t["conversation"]
        ]
        question = turns.pop()["content"] if turns and turns[-1]["role"] == "user" else t["question"]
        pairs.append(
            {
                "id": t["id"],
                "conversation": t["id"].split("<::>")[0],
                "question": question,
                "history": turns[-6:],
                "answer": t["answer"],
                "answerable": t["answerability"] != "unanswerable",
                "knowledge_base": "mtrag",
                "gold_doc_ids": t["gold_doc_ids"],
            }
        )
    return pairs, emanual[:fixed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the embedded data written by bench/ingest.py")
    parser.add_argument("--fixed", type=int, default=30, help="E-Manual questions kept as the fixed evaluation set")
    parser.add_argument("--train-seconds", type=float, default=1500.0, help="the CPU budget for training")
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--eval-limit", type=int, default=30, help="questions per evaluation set and side")
    parser.add_argument("--hparams", default="{}", help="JSON: more hyper-parameters")
    parser.add_argument("--serving", type=int, default=0, help="only time generation with this run's adapter")
    args = parser.parse_args()
    os.environ["TUNING_EVAL_LIMIT"] = str(args.eval_limit)

    data = django_embedded(args.data_dir)
    if args.serving:
        serving_speed(args.serving)
        return
    from resolvo.answers.services import answer_engine
    from resolvo.knowledge.selectors import knowledge_base_for_operator
    from resolvo.organizations.selectors import organization_get
    from resolvo.tuning import jobs, services
    from resolvo.tuning.dataset import TRAIN_FILE, dataset_build, read_examples
    from resolvo.tuning.gate import METRICS
    from resolvo.tuning.models import TuningRun

    org = organization_get(slug="bench")
    emanual = knowledge_base_for_operator(org_slug="bench", name="emanual")
    pairs, fixed = curated_pairs(args.fixed)
    pairs_file, fixed_file = data / "tuning-pairs.jsonl", data / "tuning-fixed.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    fixed_file.write_text("".join(json.dumps(q) + "\n" for q in fixed), encoding="utf-8")

    t0 = time.perf_counter()
    dataset = dataset_build(
        organization=org, engine=answer_engine(), out_dir=data / f"dataset-{int(time.time())}", curated=pairs_file
    )
    report = dataset.report.as_dict()
    print(
        f"dataset ({time.perf_counter() - t0:.0f} s): {json.dumps({k: v for k, v in report.items() if k != 'dropped_examples'}, indent=1)}"
    )
    by_kb: dict[str, int] = {}
    for split_name in ("train", "heldout"):
        for e in read_examples(dataset.directory / f"{split_name}.jsonl"):
            key = f"{split_name}:{e['meta']['knowledge_base']}:{'answerable' if e['meta']['answerable'] else 'unanswerable'}"
            by_kb[key] = by_kb.get(key, 0) + 1
    print("examples by split, knowledge base and answerability:", json.dumps(by_kb, indent=1))

    hparams = {"max_seconds": args.train_seconds, "max_steps": args.max_steps, **json.loads(args.hparams)}
    run = services.tuning_run_create(
        organization=org,
        dataset=dataset.directory,
        hparams=hparams,
        eval_knowledge_base=emanual,
        eval_questions=fixed_file,
        eval_limit=args.eval_limit,
        start=False,
    )
    t0 = time.perf_counter()
    status = jobs.tuning_run_execute(run_id=run.pk)
    run = TuningRun.objects.get(pk=run.pk)
    print(f"run {run.pk}: {status} in {time.perf_counter() - t0:.0f} s {run.error}")
    metrics = {k: v for k, v in run.metrics.items() if k != "losses"}
    print("training:", json.dumps(metrics, indent=1))
    print("losses:", [round(x, 3) for x in run.metrics.get("losses", [])])

    forward_tps = forward_speed(run.base_model, read_examples(jobs.run_dir(run) / "dataset" / TRAIN_FILE)[:4])
    if metrics.get("tokens_per_s"):
        print(
            f"speed: training {metrics['tokens_per_s']} tokens/s, forward pass alone {forward_tps:.1f} tokens/s, "
            f"ratio {metrics['tokens_per_s'] / forward_tps:.3f}"
        )
    for name, sides in (run.evaluation.get("sets") or {}).items():
        print(f"\n{name} ({sides['before']['questions']} questions)")
        print(f"{'measure':<26}{'before':>10}{'after':>10}")
        for metric in METRICS:
            print(f"{metric:<26}{sides['before'].get(metric)!s:>10}{sides['after'].get(metric)!s:>10}")
        print("outcomes before:", sides["before"]["outcomes"])
        print("outcomes after: ", sides["after"]["outcomes"])
    print("\ngate:", json.dumps(run.evaluation.get("decision"), indent=1))


def serving_speed(run_id: int, prompts: int = 4, tokens: int = 48) -> None:
    """Generation tokens/s with the run's adapter against the base model, interleaved."""
    from resolvo.answers.llm.base import ChatMessage, GenerationParams
    from resolvo.answers.llm.transformers_backend import TransformersBackend
    from resolvo.tuning import jobs
    from resolvo.tuning.dataset import HELDOUT_FILE, read_examples
    from resolvo.tuning.models import TuningRun

    run = TuningRun.objects.get(pk=run_id)
    base = TransformersBackend(run.base_model, threads=os.cpu_count())
    tuned = base.with_adapter(run.adapter_name, run.adapter_path)
    examples = read_examples(jobs.run_dir(run) / "dataset" / HELDOUT_FILE)[:prompts]
    params = GenerationParams(max_tokens=tokens, timeout_s=120)
    totals = {"base": [0.0, 0], "adapter": [0.0, 0]}
    for backend in (base, tuned):  # load both before timing
        backend.load()
    for e in examples:
        messages = [ChatMessage(m["role"], m["content"]) for m in e["messages"][:-1]]
        for name, backend in (("base", base), ("adapter", tuned)):
            stream = backend.stream(messages, params)
            started = time.perf_counter()
            "".join(stream)
            totals[name][0] += time.perf_counter() - started
            totals[name][1] += stream.usage.completion_tokens if stream.usage else 0
    speed = {name: n / s for name, (s, n) in totals.items()}
    print(
        f"generation: base {speed['base']:.1f} tokens/s, with the adapter {speed['adapter']:.1f} tokens/s, "
        f"ratio {speed['adapter'] / speed['base']:.3f} ({len(examples)} held-out prompts, {tokens} tokens max)"
    )


def forward_speed(model_name: str, examples: list[dict[str, object]]) -> float:
    """Tokens per second of a forward pass alone (no gradients) over the same examples."""
    import torch

    from resolvo.answers.llm.hf_loading import load_tokenizer, load_weights
    from resolvo.tuning.trainer import encode

    tokenizer, model = load_tokenizer(model_name), load_weights(model_name, "cpu")
    model.eval()
    tokens, started = 0, time.perf_counter()
    with torch.no_grad():
        for e in examples:
            ids = encode(tokenizer, e["messages"]).input_ids  # type: ignore[arg-type]
            model(input_ids=torch.tensor([ids]))
            tokens += len(ids)
    return tokens / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
