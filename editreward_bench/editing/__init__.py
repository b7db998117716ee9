"""Scoring image-editing models on GEdit-Bench and ImgEdit-Bench, and Best-of-N selection.

- :mod:`.gedit` and :mod:`.imgedit` load the benchmarks and find a model's outputs;
- :mod:`.items` is one output as a judge sees it;
- :mod:`.synth` builds synthetic versions of both benchmarks and toy models' outputs;
- :mod:`.scores` computes each benchmark's numbers as its authors do, and what they hide;
- :mod:`.judging` runs a judge over outputs through the pass store;
- :mod:`.model_eval` and :mod:`.best_of_n` write run folders;
- :mod:`.report` renders and verifies those runs.
"""
