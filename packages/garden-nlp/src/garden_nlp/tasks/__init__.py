"""The NLP tasks: sentence prediction, masked-LM pretraining, question answering, tagging.

Each is registered in `garden.tasks` under the class name of its config, so experiments
find it without importing this package first. As Model Garden's `official.nlp.tasks`, this
package offers each task with its config (`SentencePredictionTask`,
`SentencePredictionConfig`, ...); the configs live in `garden_nlp.configs`, which imports no
TensorFlow. Names are imported on first use.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "MaskedLMConfig": "garden_nlp.configs.masked_lm:MaskedLMConfig",
        "MaskedLMTask": ".masked_lm:MaskedLMTask",
        "QuestionAnsweringConfig": "garden_nlp.configs.question_answering:QuestionAnsweringConfig",
        "QuestionAnsweringTask": ".question_answering:QuestionAnsweringTask",
        "SentencePredictionConfig": (
            "garden_nlp.configs.sentence_prediction:SentencePredictionConfig"
        ),
        "SentencePredictionTask": ".sentence_prediction:SentencePredictionTask",
        "TaggingConfig": "garden_nlp.configs.tagging:TaggingConfig",
        "TaggingTask": ".tagging:TaggingTask",
    },
)
