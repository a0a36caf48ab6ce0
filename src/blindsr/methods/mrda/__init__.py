"""MRDA training stages on the shared engine: MLN pretraining, MAML, teacher, student (``docs/specs/mrda.md``).

MRDA: "Meta-Learning based Degradation Representation for Blind Super-Resolution", Xia et al., IEEE TIP 2023,
arXiv 2207.13963. Reference code (no licence; read, not copied): Zj-BinXia/MRDA@36f9c65. The networks are in
``nets/mrda.py``; this package trains them. Every name below is importable from ``blindsr.methods.mrda``.

Package layout:
    options.py     ``method.options`` of each stage (MLNOptions → AdaptationOptions → SRNetOptions → per stage)
    adaptation.py  the MLN's per-batch functional adaptation, shared by teacher, student and oracle
    pretrain.py    stage 1a          meta.py     stage 1b (MAML)
    teacher.py     stage 2           student.py  stage 3
    oracle.py      the teacher evaluated as an oracle (``blindsr eval --teacher-run``)
    shared.py      small helpers of every stage (L1, LR synthesis, DDP and device checks)

Paper -> code (method names are the ``method.name`` of a config; the stages: docs/specs/mrda.md §4.1-4.4):
    Alg. 1 l. 2   bicubic pretraining of the MLN ................. ``mrda_pretrain``  pretrain.MRDAPretrainMethod
    Alg. 1        MAML of the MLN, m tasks, n inner SGD steps .... ``mrda_meta``      meta.MRDAMetaMethod
      l. 4, 7     support (inner) / query (outer) HR sets, one degradation per task .. meta.MRDAMetaMethod.sample_tasks
      l. 8-11     theta_i <- theta_M; n SGD steps on non-Upscaler params ........... methods.meta.inner_adapt
      l. 14       meta-update with the average query loss (the loop's Adam) ........ meta.MRDAMetaMethod.training_step
    Alg. 2        teacher MRDA_T = DEN_T + RDAN_T, the MLN frozen ``mrda_teacher``   teacher.MRDATeacherMethod
      l. 4-9      per-batch reset to theta_M + n SGD steps (non-Upscaler) .......... adaptation.adapt_mln_features
      l. 10       D'_T from the adapted MLN (detached) ............................. adaptation.adapt_mln_features
      l. 11, Eq. 2  L_rec = ||SR - HR||_1 .............................. teacher.MRDATeacherMethod.training_step
      Table V T3  DEN_T -> 5 FC layers on the batch's true blur kernel, no MLN ..... options: ``idr_source: kernel``
      evaluation  the oracle: MLN adapted on each test (LR, HR) pair; T3: the kernel  oracle.teacher_oracle
    Sec. III-D    student MRDA_S = DEN_S + RDAN_S, RDAN_S <- RDAN_T ``mrda_student``   student.MRDAStudentMethod
      Eq. 4-6     L = L_rec + lambda_kl L_kl + lambda_abs L_abs ................... losses.distill.idr_distillation_loss
    Table V       S1/S2 (one KD term), S4/S5 (DA module, static kernels), S6 (no KD) .. options; configs/mrda/ablation_*
    architecture  MLN / DEN / RDAN widths and switches ............................. options.SRNetOptions (YAML keys)
                  -> RDAN's as one nets.mrda.RDANOptions .......................... options.SRNetOptions.rdan_options

Where this differs from the reference code (docs/specs/mrda.md section 6) and why:
    * docs/specs/mrda.md §6.1: the reference's per-batch MLN "reset" is a no-op (aliased state_dict), so its MLN drifts
      through stages 3 and 4. Here adaptation is functional: every batch starts from the meta-weights, bit for bit. The
      reference's behaviour is ``legacy_persistent_mln: true``: the MLN is then registered in ``networks`` as ``"mln"``
      (frozen: no gradient, outside the optimiser) and the adapted weights are written back into it after each
      batch, so the drifted MLN is checkpointed with the run and a resumed run continues bit for bit.
    * docs/specs/mrda.md §6.3: the Upscaler is frozen in every phase after bicubic pretraining (paper;
      ``adapt_upscaler: false``). In the meta stage its parameters get ``requires_grad = False`` at construction, so
      they receive no gradient and the optimiser (built from trainable parameters only) never sees them. The
      reference adapts them in stages 2-3.
    * docs/specs/mrda.md §6.4: ``inner_lr`` is a float or one step size per inner step (the reference: 1e-2, 5e-3, 5e-3,
      5e-3, 5e-3).
    * docs/specs/mrda.md §6.5: first-order MAML by default (the reference's), ``order: second`` for full MAML;
      "support" = the inner set, "query" = the outer set (the reference swaps the names). The outer loss is the *mean*
      over tasks (Alg. 1 l. 14 "average test loss"; the reference divides the meta-gradient by m too). With Adam the
      scale barely matters (``outer_reduction: sum`` is offered).
    * Task sampling: by default each task has its own HR patches (``task_split: disjoint``: the batch is cut into m
      chunks, each half support and half query; the batch must be a multiple of 2m). The reference degrades the
      *same* batch once per task (``task_split: shared``: support = first half, query = second half).
    * The reference monitors MAML by adapting on the test HR (an oracle). Not done here: the meta stage validates the
      un-adapted meta-init as a plain SR network, and logs the inner L1 before and after adaptation per step.

Teacher validation: MRDA_T needs the HR image to adapt its MLN (an oracle; MRDA_T3 the true kernel), and the engine
validates from LR alone, so ``MRDATeacherMethod.inference`` returns a function that raises; teacher configs keep
``validation.every: 0`` and the student stage is the one to validate. ``blindsr eval --teacher-run`` (or ``-m TEACHER
--mln MLN``) evaluates a teacher as the oracle it is, through :func:`teacher_oracle`: every test image gets a fresh
functional adaptation of the MLN on its own (LR, HR) pair, and T3 gets the cell's true kernel.

Releases: each stage's ``release()`` (the ``Method`` protocol) names what ``blindsr export`` writes, with the flat
``arch_kwargs`` a release file stores (``SRNetOptions.release_kwargs`` for MRDA_T / MRDA_S: the same keys as before
RDAN's arguments became one ``RDANOptions``).

Distributed training: the pretrain, teacher and student stages run under DDP (frozen members stay outside DDP and
every rank adapts its own MLN copy on its own batch). The meta stage calls the MLN functionally with adapted weights,
which DDP's gradient hooks do not see, and the student's KD-only warm-up calls DEN_S alone; both refuse a DDP-wrapped
network with a clear error. ``legacy_persistent_mln`` refuses several processes too (each rank would drift its own
MLN).
"""

from __future__ import annotations

from blindsr.methods.mrda.adaptation import adapt_mln_features
from blindsr.methods.mrda.meta import MetaTask, MRDAMetaMethod
from blindsr.methods.mrda.options import (
    AdaptationOptions,
    MLNOptions,
    MRDAMetaOptions,
    MRDAPretrainOptions,
    MRDAStudentOptions,
    MRDATeacherOptions,
    SRNetOptions,
)
from blindsr.methods.mrda.oracle import OracleUpscaleFn, teacher_oracle
from blindsr.methods.mrda.pretrain import MRDAPretrainMethod
from blindsr.methods.mrda.student import MRDAStudentMethod
from blindsr.methods.mrda.teacher import MRDATeacherMethod

__all__ = [
    "AdaptationOptions",
    "MLNOptions",
    "MRDAMetaMethod",
    "MRDAMetaOptions",
    "MRDAPretrainMethod",
    "MRDAPretrainOptions",
    "MRDAStudentMethod",
    "MRDAStudentOptions",
    "MRDATeacherMethod",
    "MRDATeacherOptions",
    "MetaTask",
    "OracleUpscaleFn",
    "SRNetOptions",
    "adapt_mln_features",
    "teacher_oracle",
]
