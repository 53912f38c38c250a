"""deploysim.simulate"""
