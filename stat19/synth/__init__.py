"""Synthetic register deliveries for Stat19 (all data synthetic, no real person's data).

    from stat19.synth import generate
    generate(Path("landing"), persons=2_000, start=date(2026, 1, 5), days=10)

writes `<out>/<source>/<YYYY-MM-DD>/<files> + _manifest.json` for the nine sources exactly as
/work/shared/spec/sources.md describes, and `<out>/_synth_truth.json` listing the injected faults.
Rates and code lists: `stat19.synth.rates`.
"""

from stat19.synth.generator import generate

__all__ = ["generate"]
