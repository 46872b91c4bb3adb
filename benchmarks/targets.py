"""Targets: each suite's TARGETS (speed ratios) and LIMITS (absolute values) evaluated against a run."""
from values import index, paired_range, speed_ratio


def evaluate_targets(results):
    """Every suite's TARGETS (ratios) and LIMITS (absolute values) against the records."""
    idx = index(results.get("records", []))
    out = []
    for suite, status in results.get("suites", {}).items():
        for label, what, size, threads, ours, base, want in status.get("targets", []):
            row = idx.get((what, size, threads), {})
            o, b = row.get(ours), row.get(base)
            r = speed_ratio(o, b)
            entry = {"suite": suite, "label": label, "want": f">= {want}x", "value": r,
                     "shown": "-" if r is None else f"{r:.3f}x", "met": None if r is None else r >= want}
            rng = paired_range(o, b) if o and b else None
            if rng:
                entry["range"] = [rng[0], rng[1]]
            if r is None:
                entry["why"] = (b or {}).get("skipped") or "not measured in this run"
            out.append(entry)
        for label, what, size, threads, backend, unit, limit in status.get("limits", []):
            rec = idx.get((what, size, threads), {}).get(backend)
            v = rec.get("median") if rec else None
            entry = {"suite": suite, "label": label, "want": f"<= {limit} {unit}", "value": v,
                     "shown": "-" if v is None else f"{v:.2f} {unit}", "met": None if v is None else v <= limit}
            if rec and rec.get("repeats", 0) > 1:
                entry["range"] = [rec["min"], rec["max"]]
            out.append(entry)
    return out


def targets_table(targets):
    """The targets that this run measured, and a line on those it did not."""
    lines = ["| target | wanted | measured (median) | per-round range | met |", "|---|---|---|---|---|"]
    unmeasured = [t for t in targets if t["met"] is None]
    for t in targets:
        if t["met"] is None:
            continue
        rng = t.get("range")
        rng = f"{rng[0]:.3g}-{rng[1]:.3g}" if rng else ""
        lines.append(f"| {t['label']} | {t['want']} | {t['shown']} | {rng} | {'yes' if t['met'] else '**no**'} |")
    if unmeasured:
        whys = sorted({t.get("why", "not measured") for t in unmeasured})
        lines += ["", f"{len(unmeasured)} target(s) not measured in this run ({'; '.join(whys)}; "
                      f"the full run measures every size): " + ", ".join(t["label"] for t in unmeasured) + "."]
    return "\n".join(lines)


def targets_text(targets):
    met = sum(1 for t in targets if t["met"] is True)
    missed = [t for t in targets if t["met"] is False]
    unmeasured = sum(1 for t in targets if t["met"] is None)
    lines = [f"targets: {met} met, {len(missed)} missed, {unmeasured} not measured in this run"]
    lines += [f"  missed: {t['label']}: {t['shown']} (wanted {t['want']})" for t in missed]
    return "\n".join(lines)
