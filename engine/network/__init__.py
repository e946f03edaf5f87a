"""The physics-informed network end to end.

``model`` (the encoder–decoder CNN), ``physics`` (its differentiable forward model),
``predict`` (grouped prediction), ``patch_stats`` (statistics of predicted patches),
``config``/``batches``/``losses``/``augment``/``graphs``/``step``/``checkpoint``/``trainer``
(training), ``bundles`` (the saved model) and ``inference``. Import from the submodules: the
package itself imports nothing, so a torch-free submodule such as
:mod:`engine.network.bundles` does not pull in torch.
"""
