"""Where grid intensity comes from; every source returns IntensityPoints."""
