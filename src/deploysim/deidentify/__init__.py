"""deploysim.deidentify"""
