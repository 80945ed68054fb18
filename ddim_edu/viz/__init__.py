"""Pictures: figures the notebooks share (matplotlib: ``plotting``; aligned image panels and rows:
``layouts``; the paper's Figure 1 and the terms of eq. (12): ``diagrams``), sliders (ipywidgets),
and PNG sample grids written during training (no matplotlib). Each module loads on first use."""
from .._lazy import lazy_attributes

_PLOTS = ("image_grid", "show_row", "plot_schedules", "scatter2d", "trajectories2d", "loglog_slope",
          "loglog_errors", "save_figure", "grid_array", "saving_figures")
__getattr__, __dir__ = lazy_attributes(__name__, {
    **{name: ".plotting" for name in _PLOTS}, "slider": ".widgets", "noise_slider": ".widgets", "noise_figure": ".widgets",
    "plotting": ".plotting", "widgets": ".widgets", "grids": ".grids",
    "panel_table": ".layouts", "image_rows": ".layouts", "pad_tiles": ".layouts", "layouts": ".layouts",
    "graphical_models": ".diagrams", "step_terms": ".diagrams", "diagrams": ".diagrams"})
del lazy_attributes, _PLOTS
