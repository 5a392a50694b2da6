"""The only Qt code of the plugin: dock widgets for napari."""
