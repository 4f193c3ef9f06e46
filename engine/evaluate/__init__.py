"""``segue eval``: score a job folder the way a producer listens to it.

:func:`evaluate_job` reads ``job.json`` and each variant's files and measures, per variant and in summary:

* **length**: the continuation is exactly the bars asked for (MIDI end of track; WAV frames, +-1 sample);
* **tempo and meter kept**: the MIDI file's tempo and time signature against the region's; for audio, a
  beat-tracked tempo of the continuation against the region's (:mod:`engine.evaluate.audio`);
* **key kept**: a Krumhansl-Kessler key estimate of the continuation against the region's, and the share of
  pitched notes (MIDI) in the region's scale;
* **grid**: the share of MIDI onsets on the region's own onset grid;
* **loudness** (ITU-R BS.1770, :func:`engine.evaluate.loudness.integrated_loudness`) and **click at the join**
  (audio, in ``full.wav``);
* **variety** between the variants.

An accompany job (``mode: accompany``) is scored over the region's own bars: the generated parts
(``continuation.*``) against the region they play with (``full.mid`` less the parts), every stem exactly that
long, the parts asked for written; there is no join and no loudness against the region (n/a).

The region is read from the job's own files (``full.*`` minus the continuation), so a job folder is scored on its
own even after its sources have moved. numpy and soundfile only (MIDI through engine.smf): no torch.
"""

from engine.evaluate.checks import Check
from engine.evaluate.report import JobScore, VariantScore, evaluate_job, format_table

__all__ = ["Check", "JobScore", "VariantScore", "evaluate_job", "format_table"]
