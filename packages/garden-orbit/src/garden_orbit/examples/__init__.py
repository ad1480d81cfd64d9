"""Ready-made trainers and evaluators built on garden-orbit, mirroring `orbit.examples`.

These modules are not imported by `import garden_orbit`; import them explicitly, e.g.
`from garden_orbit.examples.single_task import single_task_trainer`. They use the model,
optimizer, loss and metric objects you pass in (typically Keras 3 objects) but never import
Keras themselves.
"""
