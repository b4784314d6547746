"""The operator dashboard's files (HTML, JavaScript modules, CSS), served at ``/ui`` by
:mod:`cueflow.api.routes.ui`. No build step: the files here are what the browser loads."""
