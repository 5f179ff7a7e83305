"""Plots and the HTML report of campaign directories (matplotlib).

Not imported by ``import evo`` (as ``ribs.visualize`` is not by ``import ribs``), so that
matplotlib stays an optional dependency of the engine. Modules: ``view`` (a read-only
:class:`CampaignView` of a directory), ``plot`` (PNGs), ``report`` (one self-contained
HTML file), ``page`` (its HTML, CSS and script).
"""

from evo.visualize.plot import heatmap, plot_campaign
from evo.visualize.report import build_report
from evo.visualize.view import CampaignView, load_campaign

__all__ = ["CampaignView", "build_report", "heatmap", "load_campaign", "plot_campaign"]
