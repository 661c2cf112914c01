"""archsmith bench case (work in progress)."""
