"""The console's training page (``/console/training``): the last ``rasa test`` results under
``settings.rasa_results_dir``, as :func:`bot.review.training_report.read_report` finds them — the intent report
(weakest intents first), the intent confusion matrix, misclassified test examples, the failed test stories,
when each file was written, and what is missing.

``/console/training/intent_confusion_matrix.png`` serves that one image of the report (404 when there is
none); no other file under the results directory is reachable.
"""

from aiohttp import web

from bot.review.training_report import read_report
from bot.web.appkeys import settings_key
from bot.web.console import render, requires

routes = web.RouteTableDef()

MATRIX = "/training/intent_confusion_matrix.png"


@routes.get("/training")
@requires("manager")
async def training(request: web.Request) -> web.Response:
    """The training report; intents sorted by F1 ascending (then by name)."""
    report = await read_report(request.app[settings_key].rasa_results_dir)
    intents = sorted(report.nlu.intents, key=lambda score: (score.f1, score.name)) if report.nlu else []
    return await render(request, "manager/training.html", title="Training", report=report, intents=intents)


@routes.get(MATRIX)
@requires("manager")
async def confusion_matrix(request: web.Request) -> web.StreamResponse:
    """The intent confusion matrix (PNG) of the last NLU test; 404 when there is none."""
    report = await read_report(request.app[settings_key].rasa_results_dir)
    matrix = report.nlu.confusion_matrix if report.nlu else None
    if matrix is None:
        raise web.HTTPNotFound(text="No intent confusion matrix: run `make nlu-eval` (or `rasa test nlu`).")
    return web.FileResponse(matrix.path, headers={"Content-Type": "image/png"})
