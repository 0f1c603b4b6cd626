# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger's canary alerts: ``spec.analysis.alerts`` sent through ``AlertProvider`` objects at phase changes."""
