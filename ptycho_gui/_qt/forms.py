"""The one form builder of both docks: editors built from an engine options class.

Labels are words (``n groups``, not ``n_groups``); an optional value left unset reads
``auto``; a field shows its default (the preset that will run, via :meth:`set_defaults`)
until a user edits it, and only edited fields are explicit (``values()``), even when equal
to a default. A text that is not a number is an :class:`~engine.errors.InputError` naming
the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import MISSING
from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError

AUTO = "auto"


def words(name: str) -> str:
    """A field name as a label: ``n_groups`` -> ``n groups``."""
    return name.replace("_", " ")


def show(value: Any) -> str:
    """A value as a form shows it: ``auto`` for None."""
    return AUTO if value is None else str(value)


class Field:
    """One option's editor."""

    def __init__(self, info: Any, key: str, on_change: Callable[[str], None] | None) -> None:
        self.info, self.key = info, key
        self.touched = False
        d = info.default
        self.default = None if d is MISSING else d
        if info.choices is not None:
            w = QComboBox()
            w.addItems([str(c) for c in info.choices])
            w.setCurrentText(str(self.default))
            w.activated.connect(lambda *_: self._edited(on_change))
        elif info.base is bool and not info.optional:
            w = QCheckBox()
            w.setChecked(bool(self.default))
            w.clicked.connect(lambda *_: self._edited(on_change))
        else:
            w = QLineEdit()
            w.setPlaceholderText(show(self.default))
            w.editingFinished.connect(lambda: self._edited(on_change) if w.isModified()
                                      else None)
            w.textEdited.connect(lambda *_: setattr(self, "touched", True))
        w.setToolTip(info.help or words(info.name))
        self.widget = w

    def _edited(self, on_change: Callable[[str], None] | None) -> None:
        self.touched = True
        if isinstance(self.widget, QLineEdit):
            self.widget.setModified(False)
        if on_change is not None:
            on_change(self.key)

    def value(self) -> Any:
        """The value shown (the default when untouched)."""
        w, info = self.widget, self.info
        if isinstance(w, QComboBox):
            text = w.currentText()
            return next((c for c in info.choices if str(c) == text), text)
        if isinstance(w, QCheckBox):
            return w.isChecked()
        text = w.text().strip()
        if not text or text == AUTO:
            return None if self.touched else self.default
        base = info.base
        if base is bool:
            return text.lower() in ("1", "true", "yes", "on")
        try:
            if base is int:
                return int(text)
            if base is float:
                return float(text)
        except ValueError:
            noun = "an integer" if base is int else "a number"
            raise InputError(words(info.name), noun, repr(text)) from None
        return text

    def set(self, value: Any, *, touched: bool) -> None:
        w = self.widget
        if isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif touched or w.text():
            w.setText("" if value is None else str(value))
        else:
            w.setPlaceholderText(show(value))
        self.touched = self.touched or touched

    def show_default(self, value: Any) -> None:
        """Show ``value`` as the default (the field stays untouched)."""
        self.default = value
        if self.touched:
            return
        w = self.widget
        if isinstance(w, QLineEdit):
            w.setPlaceholderText(show(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        else:
            w.setChecked(bool(value))


class OptionsForm(QWidget):
    """Editors for ``fields`` (:func:`engine.options.describe` entries), the advanced ones
    folded; ``on_change(key)`` is called when a user edits one."""

    def __init__(self, fields: Iterable[Any], *, prefix: str = "", title: str = "",
                 on_change: Callable[[str], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from superqt import QCollapsible

        self.fields: dict[str, Field] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if title:
            layout.addWidget(QLabel(title))
        basic, advanced = QFormLayout(), QFormLayout()
        for info in fields:
            f = Field(info, prefix + info.name, on_change)
            self.fields[f.key] = f
            (advanced if info.advanced else basic).addRow(words(info.name), f.widget)
        holder = QWidget()
        holder.setLayout(basic)
        layout.addWidget(holder)
        self.advanced = None
        if advanced.rowCount():
            self.advanced = QCollapsible("advanced")
            inner = QWidget()
            inner.setLayout(advanced)
            self.advanced.addWidget(inner)
            layout.addWidget(self.advanced)

    def values(self) -> dict[str, Any]:
        """The edited fields' values (explicit choices, even when equal to a default)."""
        return {k: f.value() for k, f in self.fields.items() if f.touched}

    def value(self, key: str) -> Any:
        return self._field(key).value()

    def set_value(self, key: str, value: Any) -> None:
        """Put ``value`` into the editor of ``key`` as a user would (it becomes explicit)."""
        f = self._field(key)
        f.set(value, touched=True)

    def show_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (the model's settings) without marking them edited."""
        for key, value in values.items():
            if key in self.fields:
                f = self.fields[key]
                f.set(value, touched=False) if not isinstance(f.widget, QLineEdit) else \
                    f.widget.setText("" if value is None else str(value))

    def set_defaults(self, defaults: dict[str, Any]) -> None:
        for key, value in defaults.items():
            if key in self.fields:
                self.fields[key].show_default(value)

    def reset(self) -> None:
        for f in self.fields.values():
            f.touched = False
            if isinstance(f.widget, QLineEdit):
                f.widget.clear()

    def _field(self, key: str) -> Field:
        if key not in self.fields:
            raise InputError(key, f"one of {', '.join(self.fields)}", "an unknown field")
        return self.fields[key]
