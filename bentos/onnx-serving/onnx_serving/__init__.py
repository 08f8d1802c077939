"""onnx-serving: the BentoML service that serves any ONNX model for modeldeploy.

``service.py`` beside this package is the BentoML entry point; the modules here
hold the parts: settings (environment), fetch (URI to verified bytes), model
(bytes to session and signature), protocol (request validation), metrics,
state (background loading and readiness) and app (the HTTP routes).
"""
