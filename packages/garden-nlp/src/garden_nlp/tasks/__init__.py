"""The NLP tasks: sentence prediction, masked-LM pretraining, question answering, tagging.

Each is registered in `garden.tasks` under the class name of its config, so experiments
find it without importing this package first.
"""
