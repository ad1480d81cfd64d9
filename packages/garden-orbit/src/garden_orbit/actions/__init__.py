"""Actions: hooks that the Controller runs on train and eval outputs.

An action is any callable taking one argument, the output of a train loop or an evaluation
(usually a dict of metric values, which may be tensors). The `Controller` calls its train
actions after each inner loop of `steps_per_loop` steps and its eval actions after each
evaluation, which makes actions the place for things like exporting a model, reporting
metrics to a tuning service, extra logging or stopping a diverged run.

This package provides building blocks for common cases:

* `ConditionalAction` runs actions only when a condition on the output holds, and
  `PeriodicAction` only every so many global steps.
* `NewBestMetric` is a condition that holds when a metric reaches a new best value; it can
  persist the best value in a file (`JSONPersistedValue`) so that it survives restarts.
* `ExportSavedModel` exports a SavedModel to numbered, crash-safe paths that an
  `ExportFileManager` names and prunes.
* `SaveCheckpointIfPreempted` saves a checkpoint when the job is about to be preempted.
* `NaNGuard` stops training, or rewinds it to the last checkpoint, when the loss becomes
  NaN or infinite, raising `NaNLossError` before the bad weights are checkpointed.

For example, to export the model each time the evaluation accuracy improves:

    new_best = orbit.actions.NewBestMetric(
        "accuracy", filename=os.path.join(model_dir, "best_accuracy.json"))
    export_on_best = orbit.actions.ConditionalAction(
        condition=new_best,
        action=orbit.actions.ExportSavedModel(
            model,
            orbit.actions.ExportFileManager(
                os.path.join(model_dir, "export", "saved_model"),
                max_to_keep=3,
                next_id_fn=trainer.global_step.numpy),
            signatures=model.serve))

    controller = orbit.Controller(
        trainer=trainer,
        evaluator=evaluator,
        global_step=trainer.global_step,
        steps_per_loop=100,
        checkpoint_manager=checkpoint_manager,
        eval_actions=[export_on_best])

Using `new_best.test` as the condition and `[export, new_best.commit]` as the actions
records the new best value only once the export has succeeded.

In multi-client jobs every client runs its own Controller and actions. Restrict
side-effecting actions to one client with a condition such as `lambda _: task_id == 0`.
"""

from garden_orbit.actions.conditional_action import ConditionalAction
from garden_orbit.actions.export_saved_model import ExportFileManager, ExportSavedModel
from garden_orbit.actions.nan_guard import NaNGuard, NaNLossError
from garden_orbit.actions.new_best_metric import JSONPersistedValue, NewBestMetric
from garden_orbit.actions.periodic_action import PeriodicAction
from garden_orbit.actions.save_checkpoint_if_preempted import SaveCheckpointIfPreempted

__all__ = [
    "ConditionalAction",
    "ExportFileManager",
    "ExportSavedModel",
    "JSONPersistedValue",
    "NaNGuard",
    "NaNLossError",
    "NewBestMetric",
    "PeriodicAction",
    "SaveCheckpointIfPreempted",
]
