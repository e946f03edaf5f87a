"""Everything of the workbench that touches Qt: the dock widget, the run panel, the plots,
the one form builder and the Qt executor. Nothing outside this package imports qtpy,
magicgui, superqt, matplotlib's Qt backend or private napari API (an import contract)."""
