"""Gaussian models of the two stages, the deformation network and its regularisers."""
