"""PySide6 desktop interface of ResNeXt Studio; widgets only, every computation is delegated to `core`."""
