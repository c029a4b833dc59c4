"""The suites of tools/benchmark.py, one module each, and what they share.

  build.py, download.py, input.py, train.py   run(work, quick) -> the suite's
                                              JSON object (common.result)
  common.py    machine description, timers, result, log, the emulator
  fields.py    real SDSS fields mirrored under other field numbers (build,
               download)
  cutouts.py   sdss_cutouts/custom from the emulator, and its JPEGs (input,
               train)

Suites read the flags of tools/benchmark.py (absl's global FLAGS).
"""
