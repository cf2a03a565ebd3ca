"""A trained model at work: :mod:`~cifar_alexnet.inference.evaluate` (accuracy and the confusion
matrix over a data set; also the trainer's evaluation loop) and :mod:`~cifar_alexnet.inference.predict`
(image files -> class probabilities).
"""
